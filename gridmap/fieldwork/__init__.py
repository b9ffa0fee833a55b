"""Field work: a grid worker's day (today's tasks and the notifications that point at them).

Sits above cases, hazards and assignment (it reads all three) and below analysis and the web.
"""
