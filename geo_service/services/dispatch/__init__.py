"""The dispatch room.

Dispatch: responders and their positions, nearest and travel-time ranking, the incident
lifecycle and escalation.
"""
