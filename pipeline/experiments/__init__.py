"""One-off measurements that inform a decision; each writes a JSON under results/ and says what it decided."""
