"""The tasks the multi-host test runs: quick ones to spread, long ones to cut off mid-run."""
