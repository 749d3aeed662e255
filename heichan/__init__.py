"""heichan: tag Chinese reports about the online-account black market. See README.md."""
