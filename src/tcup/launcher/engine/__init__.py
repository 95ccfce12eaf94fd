"""The container engine (Docker or Podman), the TCUP image and its container."""
