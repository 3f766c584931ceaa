"""The ingest room.

Ingest: importing files from other systems into the database (reading lives in
geo_service.ingest).
"""
