"""A Django site whose notes reach the browsers of their room when saved."""
