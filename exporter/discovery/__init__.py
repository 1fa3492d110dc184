"""Discovery stage: which etcd members exist, where to scrape and read them, which disk they use."""
