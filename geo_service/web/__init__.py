"""Map pages for dispatchers and planners."""
