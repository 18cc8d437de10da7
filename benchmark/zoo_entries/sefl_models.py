"""Zoo entries: the SEFL models and their plain-nonlinearity "Fourier CNN" counterparts."""
