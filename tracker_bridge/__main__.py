"""`python -m tracker_bridge`: the same CLI as the `tracker-bridge` command (handy in a venv or a container)."""

from tracker_bridge.cli import main

if __name__ == "__main__":
    main()
