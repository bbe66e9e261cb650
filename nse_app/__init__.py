"""NSE Studio's Qt front end. Talks to the engine only through its worker; does no tensor math."""
