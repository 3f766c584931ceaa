"""Planning: workload per grid and balanced grid proposals.

``workload``  the workload formula (one, for areas and arrays of atoms), ``GET /workload`` of
              any boundary version (records by stored grid, or by where they lie)
``export``    a version's areas with their workload as a plan table (the export route's rows)
``proposals`` ``ProposalRequest``, ``check_proposal`` and ``propose`` (the orchestration)
``parents``   the reads: parents with today's grids, their atoms and what the atoms hold
``metrics``   the new grids and the figures, from counts as disclosure control publishes them
``drafts``    the write: the draft boundary version and its audit row

Pure geometry lives in ``analytics.atoms``; the partition itself in ``analytics.regionalize``.
"""
