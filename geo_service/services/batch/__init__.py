"""The batch room: province-scale exports and analytics runs (in-process or on Dask), and the
background job queue.

- ``export``: tables -> partitioned GeoParquet (H3 res-3 x month), incremental.
- ``request``: ``BatchRequest`` and the kinds; light, no engine.
- ``engine``: ``Task`` s -> results, in-process or on a ``distributed`` cluster (the only
  module that imports Dask, and only when an engine starts).
- ``dataset``: which partition files a run reads (pruned by month and bbox).
- ``kinds``: the computations (``cells``: heatmap, hotspots, emerging; ``grids``: workload,
  reattribute; ``proposals``).
- ``store``: writing a run, its rows and its audit row.
- ``execute``: ``compute_batch`` / ``run_batch``, engine -> kind -> store.
- ``runs``: the read side served by the API, OGC API - Features and the tiles.
- ``jobs``: background jobs of the API process.
"""
