"""Which pairs are copies (colour checks) and which copy to keep: groups and the plan."""
