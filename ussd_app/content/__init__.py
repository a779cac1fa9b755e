"""What callers hear and read: the content tree being served, its checks, bundles and sync."""
