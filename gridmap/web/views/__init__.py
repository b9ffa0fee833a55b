"""Page views of the web app, one module per audience (all on the ``pages`` blueprint of ``base``):
``worker`` (grid worker), ``cases`` (case list, case page, reporting), ``areas`` (street office,
area pages, boundary editor), ``centre`` (governance centre). ``gridmap.web.pages.init_web`` wires them."""
