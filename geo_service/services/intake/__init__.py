"""Intake: incidents as they arrive (API, Open311) and their records."""
