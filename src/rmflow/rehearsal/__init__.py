"""The rehearsal hub: a Hugging Face cache holding a layout-true stand-in for every model and data-set id that
``config/paper.yaml`` names, so the paper DAG runs offline under its real ids (``rmflow rehearsal-hub``,
``make rehearse``). ``families`` builds the tokenizers and tiny models, ``datasets`` the rows in each real layout,
``hub`` writes them as the cache holds downloaded repositories and the manifest that says what each mirrors."""
