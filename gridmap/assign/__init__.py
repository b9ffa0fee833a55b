"""Assignment: workers, departments, who is responsible for which cell and when (responsibilities and
the duty roster), the router with its fallback chain, the working-day calendar, deadlines and
escalation."""
