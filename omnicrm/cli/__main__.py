from omnicrm.cli import main

main()
