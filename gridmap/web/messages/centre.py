"""English of the centre's pages, supervision (督办), satisfaction and the coded system texts."""
from __future__ import annotations

EN: dict[str, str] = {
    # supervision, evaluation
    "发起督办": "supervise",
    "新的处置时限（可选）": "New deadline (optional)",
    "紫色圆圈：督办事件。": "Purple ring: supervised case.",
    # filter
    "时段": "Period",
    "近30天": "Last 30 days",
    "本月": "This month",
    "上月": "Last month",
    "本季度": "This quarter",
    "本年": "This year",
    "自定义": "Custom",
    "热点单元": "Hot-spot units",
    "没有类别“{value}”，已忽略这一条件。": "There is no category “{value}”; that condition was left out.",
    "没有状态“{value}”，已忽略这一条件。": "There is no status “{value}”; that condition was left out.",
    "没有时段“{value}”，已改用近30天。": "There is no period “{value}”; showing the last 30 days.",
    "日期“{value}”无效（应为 YYYY-MM-DD），已忽略。": "The date “{value}” is invalid (use YYYY-MM-DD); it was left out.",
    "起始日期晚于截止日期，已对调。": "The start date was after the end date; they were swapped.",
    "时间范围过长，已截为十年。": "The period was too long; it was cut to ten years.",
    "“仅看超时”的值“{value}”无效，已忽略。": "“Overdue only” cannot be “{value}”; it was left out.",
    # hot spots
    "热点分析": "Hot spots",
    "Getis-Ord Gi*，置换检验（双侧），按错误发现率（Benjamini–Hochberg）校正；无事件的区域不会是热点。":
        "Getis-Ord Gi*, two-sided permutation test, corrected for the false discovery rate (Benjamini–Hochberg); "
        "an area with no cases is never a hot spot.",
    "热点 99%": "Hot spot 99%",
    "热点 95%": "Hot spot 95%",
    "热点 90%": "Hot spot 90%",
    "冷点 99%": "Cold spot 99%",
    "冷点 95%": "Cold spot 95%",
    "冷点 90%": "Cold spot 90%",
    "不显著": "Not significant",
    "未检验（无户数）": "Not tested (no households)",
    "{n} 个区域，{total} 件事件": "{n} areas, {total} cases",
    "没有显著的热点或冷点。": "No significant hot or cold spot.",
    "该时段没有事件，无法做热点分析。": "No cases in this period: nothing to analyse.",
    "区域太少，无法做热点分析。": "Too few areas for a hot-spot analysis.",
    "事件数": "Cases",
    "q 值": "q-value",
    "错误发现率校正": "FDR corrected",
    "未校正": "uncorrected",
    "加载失败：{reason}": "Loading failed: {reason}",
    # scorecards
    "红黑榜": "Red and black lists",
    "红榜": "Red list",
    "黑榜": "Black list",
    "无": "none",
    "排名": "Rank",
    "综合得分": "Score",
    "综合得分 = {a} × 按期结案率 + {b} × (平均满意度 − 1) / 4（权重归一）；应结案少于 {n} 件的不排名。":
        "Score = {a} × on-time closure rate + {b} × (mean satisfaction − 1) / 4 (weights normalised); units with "
        "fewer than {n} cases due are not ranked.",
    "本期应结案事件太少，暂不排名。": "Too few cases due in this period to rank.",
    # table
    "展开或收起": "Expand or collapse",
    "{start} 至 {end} 没有符合条件的事件。": "No cases match the filter from {start} to {end}.",
    "督办数": "Supervised",
    "满意率": "Satisfied",
    "您的辖区内没有区县。": "There is no district in your area.",
    "每一列都按上面的类别、状态、超时和时段筛选。结案率 = 期内结案数 / 应结案数；按期结案率 = 按期结案数 / 应结案数；"
    "返工率 = 返工数 / 期内处置数；满意率 = 满意（4–5分）/ 期内回访数；督办数 = 期内被督办的事件数；未结事件、超时未结 = "
    "期内上报、至今未结的事件。上级行是下级的小计。":
        "Every column follows the category, status, overdue and period filters above. Closure rate = closed in the "
        "period / due to close; on-time rate = closed on time / due to close; rework rate = reworked / handled in "
        "the period; satisfied = satisfied (4–5) / evaluated in the period; supervised = cases supervised in the "
        "period; open and overdue open = cases reported in the period and not closed now. A parent row is the "
        "subtotal of its children.",
    # trend, repeats, downloads
    "事件数趋势": "Cases over time",
    "按日": "by day",
    "按周": "by week",
    "按月": "by month",
    "该时段没有事件。": "No cases in this period.",
    "重复发生的地点": "Repeated places",
    "次数": "Cases",
    "最近一次": "Latest",
    "同一类别、相距 {m} 米以内至少 {n} 件。": "At least {n} cases of one category within {m} m of one another.",
    "该时段没有重复发生的地点。": "No repeated place in this period.",
    "下载（按当前筛选）": "Downloads (current filter)",
    "事件清单 CSV": "Cases CSV",
    "事件清单 GeoJSON": "Cases GeoJSON",
    "事件清单 GeoPackage": "Cases GeoPackage",
    "{name} 台账": "{name} ledgers",
    "网页": "Web page",
}
EN.update({
    # routing reasons (gridmap.web.reasons)
    "类别“{category}”按权责清单交由 {department}": "category “{category}” goes to {department} (list of duties)",
    "未能定位到网格，等待人工定位": "no cell found: waiting for manual placement",
    "地址匹配置信度低于 {threshold}，等待人工定位": "address match below confidence {threshold}: waiting for manual placement",
    "网格 {cell}：专职网格员 {worker}": "cell {cell}: primary worker {worker}",
    "网格 {cell}：网格员 {primary} 请假，由代班 {worker} 处理": "cell {cell}: {primary} on leave, substitute {worker}",
    "网格 {cell}：网格员 {primary} 请假，由备岗 {worker} 处理": "cell {cell}: {primary} on leave, backup {worker}",
    "网格 {cell}：无在岗专职网格员，由备岗 {worker} 处理": "cell {cell}: no active primary worker, backup {worker}",
    "网格 {cell}：无在岗网格员": "cell {cell}: no worker on duty",
    "网格 {cell} 无人在岗，属地兜底：{level} {area} 的 {worker}":
        "nobody on duty in cell {cell}; the territory answers: {worker} of {level} {area}",
    "网格 {cell} 无人在岗，属地兜底：{level} {area} 待办":
        "nobody on duty in cell {cell}; the territory answers: queue of {level} {area}",
    "超时升级（第 {escalation} 级）：{level} {area} 的 {worker}": "escalated when overdue (level {escalation}): {worker} of {level} {area}",
    "超时升级（第 {escalation} 级）：{level} {area} 待办，无人在岗":
        "escalated when overdue (level {escalation}): queue of {level} {area}, nobody on duty",
    "超时升级（第 {escalation} 级）：该事件没有更高一级的区域": "escalated when overdue (level {escalation}): the case has no higher area",
    "{by} 回退：{reason}": "returned by {by}: {reason}",
    "（吸附 {snapped_m} 米至网格 {snapped_cell}）": " (snapped {snapped_m} m to cell {snapped_cell})",
    "（按地址定位，匹配度 {address_score}）": " (placed by address, score {address_score})",
    # system comments
    "上报时自动立案": "filed automatically on intake",
    "上报时自动派遣": "dispatched automatically on intake",
    "人工定位后立案": "filed after manual placement",
    "人工定位后派遣": "dispatched after manual placement",
})
