"""Planning: workload per grid and balanced grid proposals."""
