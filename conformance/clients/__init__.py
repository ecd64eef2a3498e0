"""How to talk to each service. Clients report what they saw; they never assert."""
