"""Development tools of the checkout, outside the installed ``agentmarket`` package: gas scenarios
(``tools.gas``, `make gas`) and the Slither runner (``tools.audit``, `make audit`)."""
