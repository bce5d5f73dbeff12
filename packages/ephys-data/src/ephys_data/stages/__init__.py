"""Preprocessing stages, registered under the ``ephys.preprocessing`` entry-point group."""
