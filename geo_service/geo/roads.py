"""Road travel times: an in-process graph over the road segments, and exact ETAs.

Why in process and not pgRouting: the question a dispatcher asks is one-to-many (every nearby
responder to one incident), which is one Dijkstra from the incident over the *reversed* graph.
scipy's compiled Dijkstra on a CSR matrix answers that for a city network (tens of thousands
of nodes) in milliseconds, with no extension to install on the database server; pgRouting's
``pgr_dijkstraCost`` answers the same from a SQL query that rebuilds the graph on every call.

Points join the network by a walking leg: a point snaps to the nearest segment (not vertex),
walks there in a straight line, and drives along that segment to one of its ends, respecting
its direction. ``eta`` is walking + driving + walking; a point close enough also may just walk.
Any ETA is at least ``straight-line distance / top_speed``: the bound that makes a prefilter
by straight-line distance exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyproj
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

NODE_DIGITS = 7  # endpoints equal to 1e-7 degrees (about 1 cm) are one node
GEOD = pyproj.Geod(ellps="WGS84")


def partial_time(fraction: np.ndarray | float, full: np.ndarray | float) -> np.ndarray:
    """Seconds for ``fraction`` of a segment that takes ``full`` seconds (inf: not allowed);
    no distance takes no time even against a one-way (``0 * inf`` would be NaN).

    Parameters
    ----------
    fraction : float or numpy.ndarray of float, shape (n,)
        Share of the segment's length to drive, 0..1.
    full : float or numpy.ndarray of float, shape (n,)
        Seconds for the whole segment in the direction driven; ``inf`` where that direction
        is not allowed (a one-way).

    Returns
    -------
    numpy.ndarray of float
        Seconds (broadcast shape of the inputs): 0 where ``fraction <= 0``, else
        ``fraction * full`` (``inf`` against a one-way).

    Examples
    --------
    >>> partial_time([0.0, 0.5, 0.5], [np.inf, 10.0, np.inf]).tolist()
    [0.0, 5.0, inf]
    """
    fraction = np.asarray(fraction, float)
    with np.errstate(invalid="ignore"):
        return np.where(fraction <= 0, 0.0, fraction * np.asarray(full, float))


def line_lengths_m(lines: np.ndarray) -> np.ndarray:
    """Length of each WGS84 line on the ellipsoid, in metres.

    Geodesic lengths on the WGS84 ellipsoid (pyproj ``Geod.geometry_length``, Karney's
    algorithm), the same figure as PostGIS ``ST_Length(geography)``.

    Parameters
    ----------
    lines : array_like of shapely.LineString, shape (n,)
        Lines in EPSG:4326 (lon/lat degrees).

    Returns
    -------
    numpy.ndarray of float, shape (n,)
        Length of each line in metres.

    Examples
    --------
    >>> line = shapely.LineString([(114.30, 30.59), (114.31, 30.59)])
    >>> round(float(line_lengths_m([line])[0]), 1)
    959.1
    """
    return np.array([GEOD.geometry_length(g) for g in lines], dtype=float)


@dataclass
class RoadGraph:
    """Nodes and directed edges (seconds) of a road network, with the segments for snapping.

    Build it with ``RoadGraph.build``; ``etas_to`` answers the dispatcher's question (how long
    from each responder to one incident) with one Dijkstra over the reversed graph.

    Examples
    --------
    >>> east = shapely.LineString([(114.30, 30.59), (114.31, 30.59)])
    >>> north = shapely.LineString([(114.31, 30.59), (114.31, 30.60)])
    >>> graph = RoadGraph.build(
    ...     [east, north], speed_kmh=[36.0, 36.0], oneway=[0, 1],
    ...     length_m=line_lengths_m([east, north]),
    ... )
    >>> graph.nodes
    3
    """

    forward: csr_matrix  # forward[u, v]: seconds from node u to node v along one segment
    reverse: csr_matrix  # its transpose: Dijkstra from a target gives times *to* it
    seg_a: np.ndarray  # first and last node of each segment
    seg_b: np.ndarray
    time_ab: np.ndarray  # seconds along the whole segment a -> b (inf where not allowed)
    time_ba: np.ndarray
    lines_m: np.ndarray  # segments in the local metric projection, for snapping
    tree: shapely.STRtree
    to_metric: pyproj.Transformer
    top_speed_mps: float
    walking_speed_mps: float

    @classmethod
    def build(
        cls,
        lines: np.ndarray,
        speed_kmh: np.ndarray,
        oneway: np.ndarray,
        length_m: np.ndarray,
        *,
        walking_speed_mps: float = 1.4,
    ) -> RoadGraph:
        """A graph from WGS84 LineStrings noded at intersections (one row per segment).

        Segment ends within 1e-7 degrees (about 1 cm) are one node; between two nodes the
        fastest of parallel segments is kept. Snapping happens in a local azimuthal
        equidistant projection centred on the network (metres).

        Parameters
        ----------
        lines : array_like of shapely.LineString, shape (n,)
            Segments in EPSG:4326, split at every intersection (as ``road_segments`` holds).
        speed_kmh : array_like of float, shape (n,)
            Driving speed on each segment, km/h (> 0).
        oneway : array_like of int, shape (n,)
            1: only first -> last vertex; -1: only last -> first; 0: both ways (the OSM
            ``oneway`` tag's convention).
        length_m : array_like of float, shape (n,)
            Length of each segment in metres (``line_lengths_m``).
        walking_speed_mps : float, default 1.4
            Speed of the walking legs to and from the network, m/s.

        Returns
        -------
        RoadGraph
            The graph; edge weights are seconds.

        Examples
        --------
        >>> line = shapely.LineString([(114.30, 30.59), (114.31, 30.59)])
        >>> graph = RoadGraph.build([line], [36.0], [0], line_lengths_m([line]))
        >>> graph.nodes, graph.top_speed_mps
        (2, 10.0)
        """
        lines = np.asarray(lines, dtype=object)
        first = shapely.get_coordinates(shapely.get_point(lines, 0))
        last = shapely.get_coordinates(shapely.get_point(lines, -1))
        ends = np.round(np.vstack([first, last]), NODE_DIGITS)
        _, node = np.unique(ends, axis=0, return_inverse=True)
        node = node.ravel()
        n = len(lines)
        seg_a, seg_b = node[:n], node[n:]
        speed = np.asarray(speed_kmh, float) / 3.6
        full = np.asarray(length_m, float) / speed
        oneway = np.asarray(oneway)
        time_ab = np.where(oneway >= 0, full, np.inf)
        time_ba = np.where(oneway <= 0, full, np.inf)
        # Directed edges; parallel segments between the same nodes keep the fastest.
        src = np.concatenate([seg_a, seg_b])
        dst = np.concatenate([seg_b, seg_a])
        cost = np.concatenate([time_ab, time_ba])
        keep = np.isfinite(cost) & (src != dst)
        src, dst, cost = src[keep], dst[keep], cost[keep]
        order = np.lexsort((cost, dst, src))
        src, dst, cost = src[order], dst[order], cost[order]
        first_of_pair = np.ones(len(src), bool)
        first_of_pair[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        src, dst, cost = src[first_of_pair], dst[first_of_pair], cost[first_of_pair]
        # scipy reads an explicit 0 as "no edge": a zero-length edge gets a tiny positive cost
        cost = np.maximum(cost, 1e-9)
        size = int(node.max()) + 1 if n else 0
        forward = csr_matrix((cost, (src, dst)), shape=(size, size))
        centre = shapely.centroid(shapely.multilinestrings(lines)) if n else shapely.Point(0, 0)
        to_metric = pyproj.Transformer.from_crs(
            "EPSG:4326",
            f"+proj=aeqd +lat_0={centre.y} +lon_0={centre.x} +datum=WGS84 +units=m",
            always_xy=True,
        )
        lines_m = shapely.transform(lines, lambda xy: np.column_stack(to_metric.transform(*xy.T)))
        return cls(
            forward=forward,
            reverse=forward.T.tocsr(),
            seg_a=seg_a,
            seg_b=seg_b,
            time_ab=time_ab,
            time_ba=time_ba,
            lines_m=lines_m,
            tree=shapely.STRtree(lines_m),
            to_metric=to_metric,
            top_speed_mps=max(float(speed.max()) if n else 0.0, walking_speed_mps),
            walking_speed_mps=walking_speed_mps,
        )

    @property
    def nodes(self) -> int:
        """Number of nodes (segment ends, merged within 1e-7 degrees)."""
        return self.forward.shape[0]

    def snap(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest segment, fraction along it (0 at its first vertex) and walking metres.

        Parameters
        ----------
        lon, lat : numpy.ndarray of float, shape (n,)
            Points in EPSG:4326 degrees.

        Returns
        -------
        segment : numpy.ndarray of int, shape (n,)
            Index of the nearest segment (ties: the first the tree finds).
        fraction : numpy.ndarray of float, shape (n,)
            Where the nearest point of that segment lies along it, 0..1 of its length.
        walk_m : numpy.ndarray of float, shape (n,)
            Straight-line metres from the point to the segment.

        Examples
        --------
        >>> line = shapely.LineString([(114.30, 30.59), (114.31, 30.59)])
        >>> graph = RoadGraph.build([line], [36.0], [0], line_lengths_m([line]))
        >>> segment, fraction, walk_m = graph.snap(np.array([114.305]), np.array([30.5901]))
        >>> int(segment[0]), round(float(fraction[0]), 2), round(float(walk_m[0]))
        (0, 0.5, 11)
        """
        x, y = self.to_metric.transform(np.asarray(lon, float), np.asarray(lat, float))
        points = shapely.points(np.atleast_1d(x), np.atleast_1d(y))
        _, seg = self.tree.query_nearest(points, return_distance=False, all_matches=False)
        lines = self.lines_m[seg]
        along = shapely.line_locate_point(lines, points)
        total = shapely.length(lines)
        fraction = np.divide(along, total, out=np.zeros_like(along), where=total > 0)
        walk = shapely.distance(points, shapely.line_interpolate_point(lines, along))
        return seg, fraction, walk

    def straight_m(self, lon: np.ndarray, lat: np.ndarray, lon0: float, lat0: float) -> np.ndarray:
        """Straight-line metres from each point to (lon0, lat0), in the local projection.

        Parameters
        ----------
        lon, lat : numpy.ndarray of float, shape (n,)
            Points in EPSG:4326 degrees.
        lon0, lat0 : float
            The target point in EPSG:4326 degrees.

        Returns
        -------
        numpy.ndarray of float, shape (n,)
            Metres in the graph's azimuthal equidistant projection (within a few centimetres
            per kilometre of the geodesic distance across a city).

        Examples
        --------
        >>> line = shapely.LineString([(114.30, 30.59), (114.31, 30.59)])
        >>> graph = RoadGraph.build([line], [36.0], [0], line_lengths_m([line]))
        >>> round(float(graph.straight_m(np.array([114.30]), np.array([30.59]), 114.31, 30.59)[0]))
        959
        """
        x, y = self.to_metric.transform(np.asarray(lon, float), np.asarray(lat, float))
        x0, y0 = self.to_metric.transform(lon0, lat0)
        return np.hypot(np.asarray(x) - x0, np.asarray(y) - y0)

    def etas_to(self, lon: np.ndarray, lat: np.ndarray, lon0: float, lat0: float) -> dict:
        """Seconds from each point (lon, lat) to (lon0, lat0): one Dijkstra for all of them.

        Each point walks to its nearest segment, drives along the network (one-ways
        respected) and walks from the target's segment to the target; when walking straight
        there is quicker, it walks. scipy's Dijkstra runs once, from the target's segment's
        two ends over the reversed graph.

        Parameters
        ----------
        lon, lat : numpy.ndarray of float, shape (n,)
            Start points (e.g. responders) in EPSG:4326 degrees.
        lon0, lat0 : float
            The target (e.g. an incident) in EPSG:4326 degrees.

        Returns
        -------
        dict of str to numpy.ndarray of float, each shape (n,)
            ``eta_s``: seconds door to door; ``walk_m``: metres walked (both legs, or the
            whole way); ``drive_s``: seconds driven. ``inf`` where no route exists.

        Examples
        --------
        >>> east = shapely.LineString([(114.30, 30.59), (114.31, 30.59)])
        >>> north = shapely.LineString([(114.31, 30.59), (114.31, 30.60)])
        >>> graph = RoadGraph.build(
        ...     [east, north], [36.0, 36.0], [0, 1], line_lengths_m([east, north])
        ... )
        >>> there = graph.etas_to(np.array([114.30]), np.array([30.59]), 114.31, 30.60)
        >>> round(float(there["eta_s"][0]), 1), float(there["walk_m"][0])
        (206.8, 0.0)
        >>> back = graph.etas_to(np.array([114.31]), np.array([30.60]), 114.30, 30.59)
        >>> float(back["drive_s"][0])  # against the one-way: walks the whole way
        0.0
        """
        lon, lat = np.atleast_1d(np.asarray(lon, float)), np.atleast_1d(np.asarray(lat, float))
        (t_seg,), (t_f,), (t_walk,) = self.snap(np.array([lon0]), np.array([lat0]))
        a, b = self.seg_a[t_seg], self.seg_b[t_seg]
        # from node a (or b) along the target's segment to the target's point
        into = np.array(
            [partial_time(t_f, self.time_ab[t_seg]), partial_time(1 - t_f, self.time_ba[t_seg])]
        )
        to_target = dijkstra(self.reverse, indices=[a, b])  # [2, nodes]: seconds to a, to b
        best_to = np.min(to_target + into[:, None], axis=0)  # from every node to the point
        seg, f, walk = self.snap(lon, lat)
        c, d = self.seg_a[seg], self.seg_b[seg]
        leave_d = partial_time(1 - f, self.time_ab[seg])  # drive to the segment's last node
        leave_c = partial_time(f, self.time_ba[seg])  # ... or back to its first
        drive = np.minimum(leave_d + best_to[d], leave_c + best_to[c])
        same = seg == t_seg  # on the target's own segment: drive straight along it
        forward_ok = same & (f <= t_f)
        along = partial_time(np.where(forward_ok, t_f - f, 0), self.time_ab[seg])
        drive = np.where(forward_ok, np.minimum(drive, along), drive)
        back_ok = same & (f >= t_f)
        back = partial_time(np.where(back_ok, f - t_f, 0), self.time_ba[seg])
        drive = np.where(back_ok, np.minimum(drive, back), drive)
        walk_m = walk + t_walk
        eta = walk_m / self.walking_speed_mps + drive
        # Close by, walking the whole way can be quicker than reaching the road.
        on_foot = self.straight_m(lon, lat, lon0, lat0) / self.walking_speed_mps
        walked = on_foot < eta
        return {
            "eta_s": np.where(walked, on_foot, eta),
            "walk_m": np.where(walked, self.straight_m(lon, lat, lon0, lat0), walk_m),
            "drive_s": np.where(walked, 0.0, drive),
        }

    def lower_bound_s(self, straight_m: float) -> float:
        """No ETA over ``straight_m`` metres of straight line can be shorter than this.

        Parameters
        ----------
        straight_m : float
            Straight-line distance in metres.

        Returns
        -------
        float
            Seconds at the network's top speed (or walking speed, if faster): a lower bound
            that makes a prefilter by straight-line distance exact.

        Examples
        --------
        >>> line = shapely.LineString([(114.30, 30.59), (114.31, 30.59)])
        >>> RoadGraph.build([line], [36.0], [0], line_lengths_m([line])).lower_bound_s(1000.0)
        100.0
        """
        return straight_m / self.top_speed_mps
