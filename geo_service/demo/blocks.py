"""The demo city's blocks and how areas are assembled from them.

A block is a face of the streets (lanes and riverside roads included), closed by the river's
centre line and the city outline (``road_blocks``). Every area of the hierarchy is a contiguous
group of whole blocks (``group_blocks``), so area borders run along streets, the river or the
city edge; only where a parent has fewer blocks than children is a block split in two along a
line through it that is no road (``split_along_lane``; the roads' lanes, ``demo.lanes``, make
that rare). All in the metric CRS (UTM 50N, metres).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
import shapely.ops
from scipy.cluster.vq import kmeans2
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

BALANCE_ROUNDS = 30  # rounds of moving the power diagram's weights towards even loads
BALANCE_STEP = 0.3  # each round's weight change, as a share of the mean child's area
EVEN_OUT_MOVES = 2  # per child: blocks handed from a heavier child to a lighter neighbour
MIN_BLOCK_M2 = 1000.0  # smaller faces (corners cut off by the outline) join a neighbour
LANE_SNAP_M = 1e-6  # a lane's end lies on its block's edge up to rounding


def road_blocks(
    outline: shapely.Polygon,
    streets: np.ndarray,
    river: shapely.LineString,
    water: shapely.Polygon | None = None,
) -> np.ndarray:
    """The blocks: faces of the streets, the river's centre line and the outline, inside it.

    Parameters
    ----------
    outline : the city outline (metric).
    streets : street centre lines (metric): the roads, and the paths on from where they stop
        short of the outline (``edge_paths``) or across the river (``add_banks``).
    river : the river's centre line (metric), crossing the whole outline.
    water : the river between its riverside roads (``river_band``), if any.

    Returns
    -------
    An object array of polygons that tile ``outline`` as an exact coverage: the lines are
    noded together first, so neighbouring blocks share their border vertex for vertex. Faces
    under ``MIN_BLOCK_M2`` (0.1 ha: corners a street cuts off the outline) are merged into the
    neighbour they share most border with, and faces in ``water`` into the land face they
    share most border with (its riverside road), so that no area reaches along the river
    through the water where a planner, seeing only roads, sees one strip; never across the
    river. Deterministic (same lines, same blocks in the same order).

    Examples
    --------
    >>> square = shapely.box(0, 0, 600, 600)
    >>> street = np.array([shapely.LineString([(300, -10), (300, 610)])])
    >>> river = shapely.LineString([(-10, 200), (610, 200)])
    >>> sorted(shapely.area(road_blocks(square, street, river)).round().tolist())
    [60000.0, 60000.0, 120000.0, 120000.0]
    """
    noded = shapely.union_all(np.concatenate([streets, [river, outline.exterior]]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    shapely.prepare(outline)
    faces = faces[shapely.contains(outline, shapely.point_on_surface(faces))]
    a, b, shared_m = shared_borders(faces)
    inner = shapely.point_on_surface(faces)
    # the sides of the river: no face joins one across it
    banks = shapely.get_parts(shapely.polygonize([shapely.union(outline.exterior, river)]))
    side = shapely.STRtree(banks).query_nearest(inner, return_distance=False)[1]
    small = shapely.area(faces) < MIN_BLOCK_M2
    wet = shapely.contains(water, inner) if water is not None else np.zeros(len(faces), dtype=bool)
    src, dst = np.concatenate([a, b]), np.concatenate([b, a])
    length = np.concatenate([shared_m, shared_m])
    joins = (small[src] | (wet[src] & ~wet[dst])) & (side[src] == side[dst])
    longest = np.lexsort((length[joins], src[joins]))  # each face's longest border comes last
    n = len(faces)
    target = np.arange(n)
    target[src[joins][longest]] = dst[joins][longest]
    graph = coo_matrix((np.ones(n), (np.arange(n), target)), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    _, first, size = np.unique(group, return_index=True, return_counts=True)
    blocks = faces[first]
    for merged in np.flatnonzero(size > 1):
        blocks[merged] = shapely.coverage_union_all(faces[group == merged])
    return blocks


def shared_borders(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of blocks that share a border, as indices ``a < b`` and the shared length (m).

    The blocks must be an exact coverage (a shared border has the same vertices on both
    sides): borders are found as ring segments that two blocks have in common, so blocks
    meeting only at a corner are not neighbours.

    Examples
    --------
    >>> squares = shapely.box([0, 1, 2], [0, 0, 1], [1, 2, 3], [1, 1, 2])  # the third: a corner
    >>> [x.tolist() for x in shared_borders(squares)]
    [[0], [1], [1.0]]
    """
    rings, owner = shapely.get_rings(blocks, return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring[:-1] == ring[1:]
    start, end = coords[:-1][same_ring], coords[1:][same_ring]
    block = owner[ring[:-1][same_ring]]
    flip = (start[:, 0] > end[:, 0]) | ((start[:, 0] == end[:, 0]) & (start[:, 1] > end[:, 1]))
    low = np.where(flip[:, None], end, start)
    high = np.where(flip[:, None], start, end)
    _, segment = np.unique(np.column_stack([low, high]), axis=0, return_inverse=True)
    order = np.argsort(segment.ravel(), kind="stable")
    twice = segment.ravel()[order][:-1] == segment.ravel()[order][1:]
    first, second = order[:-1][twice], order[1:][twice]
    a = np.minimum(block[first], block[second])
    b = np.maximum(block[first], block[second])
    length = np.hypot(*(high[first] - low[first]).T)
    pair, inverse = np.unique(a * len(blocks) + b, return_inverse=True)
    return pair // len(blocks), pair % len(blocks), np.bincount(inverse, length)


def split_along_lane(block: shapely.Polygon) -> np.ndarray:
    """Split a block along a lane: a straight line through its centre, across its long side.

    The long side is that of the block's minimum rotated rectangle, so a 300 x 300 m block
    becomes two of about 150 x 300 m. The centre is the centroid, or a point inside the block
    when the centroid falls outside it. Returns the pieces (two, more when the lane crosses a
    non-convex block several times).

    Examples
    --------
    >>> halves = split_along_lane(shapely.box(0, 0, 400, 300))
    >>> sorted(shapely.bounds(halves)[:, 2].tolist())
    [200.0, 400.0]
    """
    rectangle = np.asarray(shapely.oriented_envelope(block).exterior.coords)[:3]
    sides = np.diff(rectangle, axis=0)
    lengths = np.hypot(sides[:, 0], sides[:, 1])
    along = sides[np.argmax(lengths)] / lengths.max()
    across = np.array([-along[1], along[0]])
    centre = block.centroid if block.contains(block.centroid) else block.point_on_surface()
    reach = lengths.sum()  # longer than the block's diagonal
    origin = np.array([centre.x, centre.y])
    lane = shapely.LineString([origin - reach * across, origin + reach * across])
    return np.asarray(shapely.get_parts(shapely.ops.split(block, lane)))


@dataclass
class BlockSet:
    """The blocks areas are assembled from, as lanes split some of them (metric).

    ``geoms`` grows (a split block's pieces are appended, with their ``area_m2``,
    ``centroid``, ``bank`` and ``at_bridge``; the block itself stays, referenced by no area
    any more) and stays an exact coverage, ``of_point`` gives each population point's block,
    and ``a``, ``b``, ``shared_m`` the neighbouring blocks and the border they share (m).
    Blocks on different banks of the river are neighbours for areas only where both touch a
    bridge (``borders_within``).
    """

    geoms: list[shapely.Geometry]
    area_m2: np.ndarray
    centroid: np.ndarray
    pts: np.ndarray
    of_point: np.ndarray
    a: np.ndarray
    b: np.ndarray
    shared_m: np.ndarray
    bank: np.ndarray  # the side of the river each block lies on (any two values)
    at_bridge: np.ndarray  # whether it touches a bridge

    @classmethod
    def build(
        cls,
        blocks: np.ndarray,
        pts: np.ndarray,
        bank: np.ndarray | None = None,
        at_bridge: np.ndarray | None = None,
    ) -> BlockSet:
        """Index the blocks: which block each point (x, y in metres) falls in, and neighbours.

        ``bank`` and ``at_bridge`` (per block) keep areas from reaching across the river but
        at a bridge; without them every shared border counts.
        """
        tree = shapely.STRtree(blocks)
        p_idx, b_idx = tree.query(shapely.points(pts), predicate="intersects")
        of_point = np.full(len(pts), -1, dtype=int)
        of_point[p_idx] = b_idx  # a point on a shared border: either block
        lost = np.flatnonzero(of_point < 0)  # outside every block by a rounding error
        of_point[lost] = tree.query_nearest(shapely.points(pts[lost]), return_distance=False)[1]
        a, b, shared_m = shared_borders(blocks)
        centroid = shapely.get_coordinates(shapely.centroid(blocks))
        return cls(
            list(blocks),
            shapely.area(blocks),
            centroid,
            pts,
            of_point,
            a,
            b,
            shared_m,
            np.zeros(len(blocks)) if bank is None else np.asarray(bank),
            np.zeros(len(blocks), dtype=bool) if at_bridge is None else np.asarray(at_bridge),
        )

    def split(self, block: int, members: np.ndarray) -> np.ndarray:
        """Split ``block`` along a lane; ``members`` are the points of the area holding it.

        The lane's ends are added to the neighbouring blocks as vertices, so the blocks stay a
        coverage (no T-junctions). Returns the ids of the pieces, whose points and borders are
        updated.
        """
        pieces = split_along_lane(self.geoms[block])
        ids = np.arange(len(self.geoms), len(self.geoms) + len(pieces))
        self.geoms.extend(pieces)
        self.area_m2 = np.concatenate([self.area_m2, shapely.area(pieces)])
        self.centroid = np.concatenate(
            [self.centroid, shapely.get_coordinates(shapely.centroid(pieces))]
        )
        self.bank = np.concatenate([self.bank, np.repeat(self.bank[block], len(pieces))])
        self.at_bridge = np.concatenate(
            [self.at_bridge, np.repeat(self.at_bridge[block], len(pieces))]
        )
        touching = (self.a == block) | (self.b == block)
        around = np.concatenate([self.a[touching], self.b[touching]])
        around = around[around != block]
        ends = shapely.multipoints(shapely.get_coordinates(pieces))
        for neighbour in around:
            self.geoms[neighbour] = shapely.snap(self.geoms[neighbour], ends, LANE_SNAP_M)
        inside = members[self.of_point[members] == block]
        for piece, piece_id in zip(pieces, ids, strict=True):
            self.of_point[inside[shapely.intersects_xy(piece, *self.pts[inside].T)]] = piece_id
        local = np.concatenate([ids, around])
        a, b, shared_m = shared_borders(np.asarray([self.geoms[i] for i in local], dtype=object))
        new = (a < len(ids)) | (b < len(ids))  # the pieces come first in ``local``
        self.a = np.concatenate([self.a[~touching], local[a[new]]])
        self.b = np.concatenate([self.b[~touching], local[b[new]]])
        self.shared_m = np.concatenate([self.shared_m[~touching], shared_m[new]])
        return ids

    def borders_within(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The borders between ``blocks`` (sorted ids), as positions in ``blocks`` and length;
        across the river only between blocks that both touch a bridge."""
        inside = np.isin(self.a, blocks) & np.isin(self.b, blocks)
        inside &= (self.bank[self.a] == self.bank[self.b]) | (
            self.at_bridge[self.a] & self.at_bridge[self.b]
        )
        return (
            np.searchsorted(blocks, self.a[inside]),
            np.searchsorted(blocks, self.b[inside]),
            self.shared_m[inside],
        )

    def union(self, blocks: np.ndarray) -> shapely.Geometry:
        """The area made of ``blocks`` (ids): their coverage union."""
        return shapely.coverage_union_all([self.geoms[i] for i in blocks])


def group_blocks(
    rng: np.random.Generator, blocks: BlockSet, parent: np.ndarray, members: np.ndarray, k: int
) -> list[np.ndarray]:
    """Group the blocks of one parent into k contiguous children of even population.

    Parameters
    ----------
    rng : the k-means start (``kmeans2`` with k-means++).
    blocks : the city's blocks; lanes split here are recorded in it.
    parent : ids of the parent's blocks.
    members : indices of the population points in the parent (``blocks.pts``).
    k : number of children.

    Returns
    -------
    The block ids of each of the k children: each child is non-empty and connected through
    shared borders, and together they are exactly the parent's blocks.

    Notes
    -----
    The centres are k-means centres of the parent's population points. Each block goes to a
    centre by the position of its population (its mean point, the centroid when empty) in a
    power diagram weighted for even populations (``_balanced_labels``); detached groups of
    blocks go to the neighbour they share most border with (``_make_contiguous``), a child
    left without blocks gets the nearest one another can spare (``_fill_empty``), and a few
    border blocks pass from heavy children to light neighbours (``_even_out``).

    A parent with fewer blocks than children first has its most populous block split along a
    lane, again until there are enough: rare, as the roads' lanes cut blocks finer where
    people are dense (the default city of 1,500 grids has about 12,900 blocks, 6 a grid at the
    median, and needs none; it needed 2 on the lattice's 8,300 alone).
    """
    if k == 1:
        return [parent]
    parent = np.sort(parent)
    while len(parent) < k:
        weight = np.bincount(
            np.searchsorted(parent, blocks.of_point[members]), minlength=len(parent)
        )
        heaviest = parent[np.lexsort((blocks.area_m2[parent], weight))[-1]]
        pieces = blocks.split(heaviest, members)
        parent = np.sort(np.concatenate([parent[parent != heaviest], pieces]))
    local = np.searchsorted(parent, blocks.of_point[members])
    weight = np.bincount(local, minlength=len(parent)).astype(float)
    area = blocks.area_m2[parent]
    sums = np.column_stack(
        [np.bincount(local, blocks.pts[members, axis], len(parent)) for axis in (0, 1)]
    )
    mean = sums / np.maximum(weight, 1)[:, None]
    position = np.where(weight[:, None] > 0, mean, blocks.centroid[parent])
    data = blocks.pts[members] if len(members) > k else position
    centres, _ = kmeans2(data, k, minit="++", seed=rng, iter=15)
    distance = np.hypot(*(position[:, None, :] - centres[None, :, :]).transpose(2, 0, 1))
    labels = _balanced_labels(distance, weight, area.sum() / k)
    a, b, shared_m = blocks.borders_within(parent)
    labels = _make_contiguous(labels, a, b, shared_m, weight, area, k)
    labels = _fill_empty(labels, a, b, distance, k)
    labels = _even_out(labels, a, b, weight, k)
    return [parent[labels == j] for j in range(k)]


def _balanced_labels(distance: np.ndarray, weight: np.ndarray, cell_m2: float) -> np.ndarray:
    """Assign blocks to centres so that each centre's population is near the mean.

    Each block goes to the centre of least squared distance minus that centre's bonus (a
    power diagram: cells stay compact); ``BALANCE_ROUNDS`` rounds raise the bonus of light
    centres and lower that of heavy ones, in steps of a share of ``cell_m2`` (the mean
    child's area, m²). Returns the most even assignment seen (least sum of squared loads),
    the plain nearest-centre one if none beats it.
    """
    k = distance.shape[1]
    squared = distance**2
    target = max(weight.sum() / k, 1.0)
    bonus = np.zeros(k)
    best, best_spread = np.argmin(squared, axis=1), np.inf
    for _ in range(BALANCE_ROUNDS):
        labels = np.argmin(squared - bonus, axis=1)
        load = np.bincount(labels, weight, k)
        spread = float(((load - target) ** 2).sum())
        if spread < best_spread:
            best, best_spread = labels, spread
        bonus += BALANCE_STEP * cell_m2 * (target - load) / target
    return best


def _make_contiguous(
    labels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    shared_m: np.ndarray,
    weight: np.ndarray,
    area: np.ndarray,
    k: int,
) -> np.ndarray:
    """Give every detached group of a child's blocks to the neighbour it shares most border with.

    ``labels`` gives each block's child; ``a``, ``b``, ``shared_m`` the neighbouring blocks and
    their border (m). Each child keeps its most populous connected group (then the largest);
    each other group goes to the kept group of another child it borders longest. Groups
    bordering only other detached groups wait for the next round; every round moves at least
    one, since the parent is connected.
    """
    n = len(labels)
    while True:
        same = labels[a] == labels[b]
        graph = coo_matrix((np.ones(same.sum()), (a[same], b[same])), shape=(n, n))
        n_groups, group = connected_components(graph, directed=False)
        group_label = np.empty(n_groups, dtype=int)
        group_label[group] = labels
        order = np.lexsort(
            (np.bincount(group, area, n_groups), np.bincount(group, weight, n_groups))
        )
        kept = np.full(k, -1)
        kept[group_label[order]] = order  # the heaviest group of each child is written last
        is_kept = np.zeros(n_groups, dtype=bool)
        is_kept[kept[kept >= 0]] = True
        if is_kept.all():
            return labels
        src = np.concatenate([group[a], group[b]])
        dst = np.concatenate([group[b], group[a]])
        length = np.concatenate([shared_m, shared_m])
        onto = ~is_kept[src] & is_kept[dst]
        if not onto.any():
            raise RuntimeError("the parent's blocks are not connected")
        pair, inverse = np.unique(src[onto] * n_groups + dst[onto], return_inverse=True)
        total = np.bincount(inverse, length[onto])
        detached, receiver = np.divmod(pair, n_groups)
        longest = np.lexsort((total, detached))  # the longest border of each group comes last
        target = np.full(n_groups, -1)
        target[detached[longest]] = receiver[longest]
        moves = target[group] >= 0
        labels = np.where(moves, group_label[target[group]], labels)


def _fill_empty(
    labels: np.ndarray, a: np.ndarray, b: np.ndarray, distance: np.ndarray, k: int
) -> np.ndarray:
    """Give each child without blocks the block nearest its centre that another can spare.

    A block can be spared by a child of two blocks or more that stays connected without it.
    ``distance`` is each block's distance to each child's centre (m).
    """
    labels = labels.copy()
    for child in np.flatnonzero(np.bincount(labels, minlength=k) == 0):
        sizes = np.bincount(labels, minlength=k)
        candidates = np.flatnonzero(sizes[labels] >= 2)
        for block in candidates[np.argsort(distance[candidates, child], kind="stable")]:
            rest = labels == labels[block]
            rest[block] = False
            if _connected(rest, a, b):
                labels[block] = child
                break
    return labels


def _even_out(
    labels: np.ndarray, a: np.ndarray, b: np.ndarray, weight: np.ndarray, k: int
) -> np.ndarray:
    """Hand border blocks from heavier children to lighter neighbours, best move first.

    A move of block u (population w) from child p to its neighbour q lowers the sum of squared
    child populations by 2 w (load_p - load_q - w); moves that lower it are made while the
    donor keeps two blocks or more and stays connected, at most ``EVEN_OUT_MOVES`` per child.
    """
    labels = labels.copy()
    src, dst = np.concatenate([a, b]), np.concatenate([b, a])
    for _ in range(EVEN_OUT_MOVES * k):
        load = np.bincount(labels, weight, k)
        size = np.bincount(labels, minlength=k)
        giver, taker = labels[src], labels[dst]
        gain = weight[src] * (load[giver] - load[taker] - weight[src])
        useful = np.flatnonzero((giver != taker) & (size[giver] >= 2) & (gain > 0))
        for move in useful[np.argsort(-gain[useful], kind="stable")]:
            rest = labels == giver[move]
            rest[src[move]] = False
            if _connected(rest, a, b):
                labels[src[move]] = taker[move]
                break
        else:
            return labels
    return labels


def _connected(chosen: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the ``chosen`` blocks (a mask) form one group through their shared borders."""
    ids = np.flatnonzero(chosen)
    inside = chosen[a] & chosen[b]
    graph = coo_matrix(
        (np.ones(inside.sum()), (np.searchsorted(ids, a[inside]), np.searchsorted(ids, b[inside]))),
        shape=(len(ids), len(ids)),
    )
    return connected_components(graph, directed=False)[0] == 1
