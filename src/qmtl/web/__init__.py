"""HTTP plumbing shared by the WorldService and the Gateway (no business logic here)."""
