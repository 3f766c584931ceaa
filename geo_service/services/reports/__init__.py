"""The managers' reports: performance per area and per grid worker (``performance``), as
files (``exports``: CSV, XLSX, PDF) and as a weekly report (``weekly``)."""
