"""Entry point of the Streamlit cost explorer: `streamlit run dashboards/app.py`.

Every page reads through `dashboards.client` (the analytics HTTP API); this script only sets
the page chrome, the sign-in sidebar and the navigation. Pages live in `views/` (not `pages/`,
whose automatic navigation would compete with `st.navigation`).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards.session import sidebar

HERE = Path(__file__).parent

st.set_page_config(page_title="tollway — cost explorer", page_icon="💸", layout="wide")

navigation = st.navigation(
    [
        st.Page(
            HERE / "views/overview.py", title="Overview", icon=":material/dashboard:", default=True
        ),
        st.Page(
            HERE / "views/explorer.py",
            title="Explorer",
            icon=":material/travel_explore:",
            url_path="explorer",
        ),
        st.Page(
            HERE / "views/budgets.py",
            title="Budgets",
            icon=":material/savings:",
            url_path="budgets",
        ),
        st.Page(
            HERE / "views/routing.py",
            title="Routing",
            icon=":material/alt_route:",
            url_path="routing",
        ),
        st.Page(HERE / "views/calls.py", title="Calls", icon=":material/call:", url_path="calls"),
        st.Page(HERE / "views/keys.py", title="Keys", icon=":material/key:", url_path="keys"),
        st.Page(HERE / "views/audit.py", title="Audit", icon=":material/policy:", url_path="audit"),
    ]
)
with st.sidebar:
    st.markdown("### tollway")
sidebar()
navigation.run()
