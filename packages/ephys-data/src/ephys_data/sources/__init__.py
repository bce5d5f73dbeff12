"""Data-set discovery, registered under the ``ephys.sources`` entry-point group."""
