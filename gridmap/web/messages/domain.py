"""English of the messages of domain fidelity (issue 13): standard codes, on-site verification
before filing, filing criteria."""

EN = {
    "现场核实属实": "Verified on site",
    "核实不属实": "Not confirmed on site",
    "备注": "Note",
    "立案标准": "Filing criteria",
    "现场核实": "On-site verification",
    "已核实": "Verified",
    "待核实": "Waiting for verification",
    "核实时限": "verify by",
}
