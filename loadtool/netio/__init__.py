"""Socket plumbing shared by the reference server and the generator (no protocol here)."""
