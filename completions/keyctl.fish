complete --keep-order --exclusive --command keyctl --arguments "(COMPLETE=fish keyctl -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
