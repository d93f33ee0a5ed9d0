"""The web console (server-rendered pages): see the web console issue."""
