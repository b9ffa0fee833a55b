"""English of the messages added for issue 14's input and limit checks (413 pages)."""

EN = {
    "请求过大（413）": "Request too large (413)",
    "上传的内容超过 {kb} KB 的上限。": "The upload is larger than the limit of {kb} KB.",
    "上传的内容超过上限。": "The upload is larger than the limit.",
}
