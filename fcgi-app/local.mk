# fcgi-app/: the responder, fcgiq.
