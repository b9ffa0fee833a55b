"""Hazards (隐患): the register beside cases, rectification, verification, inspections."""
