"""Boundaries: the district → street → community → cell hierarchy, its geometry versions,
import/export of boundary files, coverage checks and the in-memory cell lookup index."""
