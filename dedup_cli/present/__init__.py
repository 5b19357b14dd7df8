"""What a person reads: the run's reports and plots."""
