"""Command line, experiment runners and the reporting layer of genbounds."""
