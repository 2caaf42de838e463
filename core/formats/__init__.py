"""Files people bring and take away: caption CSVs, sidecars, exports, atomic writes."""
