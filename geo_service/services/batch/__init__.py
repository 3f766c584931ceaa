"""The batch room.

Batch: province-scale exports and analytics runs (in-process or on Dask), and the background job
queue.
"""
