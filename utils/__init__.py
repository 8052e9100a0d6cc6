"""Small helpers with no project imports, so that every layer (configs .. scripts) may use them."""
