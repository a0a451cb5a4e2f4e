// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";

/// @title AID token interface
/// @notice The marketplace's unit of account: fees, royalties and node stakes are paid in AID.
interface IAIDToken is IERC20, IERC20Permit {
    /// @notice Emitted when new AID is minted as a reward for a data contribution.
    event RewardMinted(address indexed to, uint256 amount, bytes32 indexed contributionId);

    /// @notice Mints `amount` AID to `to` as a reward for the contribution `contributionId`.
    /// @dev Only MINTER_ROLE. Reverts with ERC20ExceededCap when the cap would be exceeded.
    function mintReward(address to, uint256 amount, bytes32 contributionId) external;

    /// @notice The maximum supply of AID, in wei units.
    function cap() external view returns (uint256);
}
