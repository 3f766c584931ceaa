"""The living city: a simulator that drives any geo-service deployment through its public API
(``geo-service simulate``), used by ``geo-service demo`` and by the soak benchmark."""
