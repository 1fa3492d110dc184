"""Tests that sit outside the product: the layering, the docs, the dashboard and the Dockerfile
checked against the code."""
