"""Balanced, contiguous, compact regions of atoms, with few moves from today's plan.

Why by hand: spopt's AZP, max-p and SKATER build dense n x n structures or run global
heuristics that take minutes at 16,000 atoms and do not target an exact number of regions
of equal workload; none of them knows "stay close to today's grids". This is the classic
two-phase territory-design heuristic instead (Kalcsics, Nickel & Schröder 2005), with a
repair step for hard cases:

1. *Start* (``seeding``): today's grids when the count stays the same (stability for free);
   otherwise seeds from k-means on the atoms' positions and balanced region growing (the
   lightest region takes its nearest free neighbour next), which is contiguous by
   construction.
2. *Improve* (``local_search``): moving single boundary atoms to a neighbouring region when
   that lowers ``imbalance + compactness x cut edges + stability x moved workload``, and
   never when it would split the region it leaves (a breadth-first check that stops as soon
   as the atom's neighbours in that region have met again).
3. *Repair* (``recombination``), only when the best plan is still outside the tolerance
   band: recombination of two neighbouring regions along a random spanning tree (ReCom,
   DeFord, Duchin & Solomon 2021), and merge-splits that move a region to where the work is.
   Skipped when the parent's own shape makes the band unreachable (``lowest_max_over_mean``).

``partitioner.partition`` runs the three and keeps the best plan; ``plan`` holds the result
type and the balance measures. Everything is O(atoms x degree) per pass on a sparse
adjacency list. Baselines (``bench/rebalance.py``): spopt's max-p, AZP and SKATER.
"""

from geo_service.analytics.regionalize.partitioner import MAX_REPAIRS, partition
from geo_service.analytics.regionalize.plan import Limits, Plan, Progress, balance
from geo_service.analytics.regionalize.seeding import lowest_max_over_mean

__all__ = [
    "MAX_REPAIRS",
    "Limits",
    "Plan",
    "Progress",
    "balance",
    "lowest_max_over_mean",
    "partition",
]
