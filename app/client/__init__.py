"""`filedock files …`: an HTTP client of a running FileDock. It imports nothing of the server's
layers but `app.core.units`, so it works against any FileDock, local or remote."""
