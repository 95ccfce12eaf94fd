"""Uploading results to RefStack, and signing them."""
