"""Cloud credentials and identity: reading them on the host, checking them with
Keystone, and checking the catalog before a run."""
