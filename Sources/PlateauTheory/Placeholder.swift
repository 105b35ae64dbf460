// Populated below.
