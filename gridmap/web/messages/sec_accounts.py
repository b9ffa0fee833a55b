"""English of the sessions, accounts and audit-log messages (branch sec-accounts)."""

EN = {
    "审计日志": "Audit log",
    "操作人": "By",
    "时间": "Time",
    "对象": "Target",
    "详情": "Details",
    "没有符合条件的记录。": "No entries match.",
    "登录成功": "Successful login",
    "登录失败": "Failed login",
    "登录受限（尝试过多）": "Login refused (too many attempts)",
    "退出登录": "Logout",
    "使用 API 令牌": "API token used",
    "创建 API 令牌": "API token created",
    "吊销 API 令牌": "API token revoked",
    "创建用户": "User created",
    "停用用户": "User disabled",
    "启用用户": "User enabled",
    "重设密码": "Password changed",
    "导出个人信息": "Personal data exported",
    "发布边界": "Boundaries published",
}
