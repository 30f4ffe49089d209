"""Admission: what a request must pass before work starts (body, type, drain, queue), and its release."""
